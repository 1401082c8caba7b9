# dsk_add_plugin(<name> SOURCES <src>... [MANIFEST <file>] [LINK_LIBRARIES <lib>...]
#                [OUTPUT_DIRECTORY <dir>] [TARGET <target>] [NO_INSTALL])
#
# Builds the plugin library `dsk_<name>.so` (a MODULE: nothing links against it) and puts the
# manifest `<name>.plugin.toml` beside it, in the build tree and on install. The manifest is the
# single source of the plugin's name and version: they reach the code as DSK_PLUGIN_NAME and
# DSK_PLUGIN_VERSION, so the descriptor and the manifest cannot drift apart.
# The plugin links dsk::sdk (headers only), never libdsk: the kernel passes a function table in.
include_guard(GLOBAL)

function(dsk_add_plugin name)
    cmake_parse_arguments(ARG "NO_INSTALL" "MANIFEST;OUTPUT_DIRECTORY;TARGET" "SOURCES;LINK_LIBRARIES" ${ARGN})
    if(NOT ARG_SOURCES)
        message(FATAL_ERROR "dsk_add_plugin(${name}): SOURCES is required")
    endif()
    if(NOT ARG_MANIFEST)
        set(ARG_MANIFEST ${CMAKE_CURRENT_SOURCE_DIR}/${name}.plugin.toml)
    endif()
    if(NOT EXISTS ${ARG_MANIFEST})
        message(FATAL_ERROR "dsk_add_plugin(${name}): manifest ${ARG_MANIFEST} not found; "
                            "copy plugins/_template/template.plugin.toml and edit it")
    endif()
    if(NOT ARG_OUTPUT_DIRECTORY)
        if(DEFINED DSK_PLUGIN_OUTPUT_DIR)
            set(ARG_OUTPUT_DIRECTORY ${DSK_PLUGIN_OUTPUT_DIR})
        else()
            set(ARG_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/plugins)
        endif()
    endif()

    # Read name/version/library from the manifest's [plugin] table.
    file(STRINGS ${ARG_MANIFEST} lines)
    foreach(key name version library)
        set(manifest_${key} "")
        foreach(line IN LISTS lines)
            if(line MATCHES "^[ \t]*${key}[ \t]*=[ \t]*\"([^\"]*)\"")
                set(manifest_${key} "${CMAKE_MATCH_1}")
                break()
            endif()
        endforeach()
    endforeach()
    if(NOT manifest_name STREQUAL name)
        message(FATAL_ERROR "${ARG_MANIFEST}: name = \"${manifest_name}\" but dsk_add_plugin() was given \"${name}\"")
    endif()
    if(NOT manifest_library STREQUAL "dsk_${name}${CMAKE_SHARED_MODULE_SUFFIX}")
        message(FATAL_ERROR "${ARG_MANIFEST}: library must be \"dsk_${name}${CMAKE_SHARED_MODULE_SUFFIX}\"")
    endif()
    if(NOT manifest_version MATCHES "^[0-9]+\\.[0-9]+\\.[0-9]+")
        message(FATAL_ERROR "${ARG_MANIFEST}: version = \"${manifest_version}\" is not MAJOR.MINOR.PATCH")
    endif()

    set(target dsk_${name})  # the target name; the file is dsk_<name>.so whatever it is
    if(ARG_TARGET)
        set(target ${ARG_TARGET})
    endif()
    add_library(${target} MODULE ${ARG_SOURCES})
    target_link_libraries(${target} PRIVATE dsk::sdk ${ARG_LINK_LIBRARIES})
    target_compile_definitions(${target} PRIVATE
        DSK_PLUGIN_NAME="${manifest_name}" DSK_PLUGIN_VERSION="${manifest_version}")
    set_target_properties(${target} PROPERTIES
        PREFIX ""
        OUTPUT_NAME dsk_${name}
        CXX_VISIBILITY_PRESET hidden
        C_VISIBILITY_PRESET hidden
        VISIBILITY_INLINES_HIDDEN ON
        LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
    # A plugin must resolve every symbol it uses at load time, from its own dependencies.
    target_link_options(${target} PRIVATE -Wl,--no-undefined)
    configure_file(${ARG_MANIFEST} ${ARG_OUTPUT_DIRECTORY}/${name}.plugin.toml COPYONLY)

    if(NOT ARG_NO_INSTALL)
        # Relative to the install prefix, the same place as in the dsk installation found
        # (<libdir>/dsk/plugins): `cmake --install build --prefix <dsk prefix>` puts the plugin
        # where that dsk finds it with no environment variable.
        if(DEFINED DSK_PLUGIN_INSTALL_RELDIR)
            set(dest ${DSK_PLUGIN_INSTALL_RELDIR})
        else()
            set(dest lib/dsk/plugins)
        endif()
        install(TARGETS ${target} LIBRARY DESTINATION ${dest})
        install(FILES ${ARG_MANIFEST} DESTINATION ${dest} RENAME ${name}.plugin.toml)
    endif()
endfunction()
